/**
 * The rules the suites check, one test each. A test's title is `rule (source)`; every failure
 * message starts with the rule, so a report says which promise of the port an implementation
 * broke, not only which value differed.
 */
export interface Rule {
  /** What the store must do, in a few words. */
  readonly rule: string;
  /** Where it comes from: the PEP 694 section (or other specification) that needs it. */
  readonly source: string;
}

/** The vitest title of a rule's test. */
export const titleOf = (r: Rule): string => `${r.rule} (${r.source})`;

const rule = (text: string, source: string): Rule => ({ rule: text, source });
const PEP694 = (section: string) => `PEP 694 "${section}"`;

export const SESSION_STORE_RULES = {
  // ---- Publishing sessions: one per release, first-release name reservation -------------------
  liveSessionUnique: rule(
    "one live session per name+version: a second create answers 'exists' with the live session, whether open, processing or error",
    PEP694('Multiple Session Creation Requests'),
  ),
  pep440EqualVersions: rule(
    "PEP 440-equal versions share a release key and so one live session: creating 1.0.0 (or 1, v1.0) while 1.0 is live answers 'exists'",
    `${PEP694('Multiple Session Creation Requests')}, PEP 440 "Version matching"`,
  ),
  terminalSessionFreesRelease: rule(
    'a published or canceled session frees its name+version: the next create makes a new session',
    PEP694('Multiple Session Creation Requests'),
  ),
  concurrentCreatesOneWinner: rule(
    "N concurrent creates of one name+version: exactly one 'created', every other answers 'exists' with the winner",
    PEP694('Multiple Session Creation Requests'),
  ),
  firstReleaseReservesName: rule(
    "first-release name reservation: the first session of an unpublished name reserves it without making it visible, another creator's version answers 'name-reserved' while the holder is live",
    PEP694('Create a Publishing Session'),
  ),
  reservationHolderOtherVersions: rule(
    "the reservation's creator may start other versions of the name (each a first release), other creators still get 'name-reserved', and canceling the holder passes the reservation to the creator's other live session",
    PEP694('Multiple Session Creation Requests'),
  ),
  concurrentFirstReleasesOneWinner: rule(
    "N concurrent first-release creates of one name, each another version by another creator: exactly one reserves the name, every other answers 'name-reserved' with the winner",
    PEP694('Create a Publishing Session'),
  ),
  cancelReleasesReservation: rule(
    'canceling a first-release session releases the name reservation, as if the project were never uploaded',
    PEP694('Create a Publishing Session'),
  ),
  publishMakesRegistrationPermanent: rule(
    'publishing a first-release session turns the reservation into a permanent registration: later sessions of other versions reserve nothing',
    PEP694('Create a Publishing Session'),
  ),
  emptyPublishRegistersName: rule(
    'publishing a session without files registers the project name',
    `PEP 694 FAQ "Can I use the upload 2.0 API to reserve a project name?"`,
  ),
  countsLiveSessions: rule(
    'live sessions are counted per creator: open, processing and error count, published and canceled do not',
    `index limits; ${PEP694('Publishing Session States')}`,
  ),
  recordsRoundTrip: rule(
    'records read back as created and as updated, dates and bytes included',
    `${PEP694('Publishing Session Status')}, ${PEP694('File Upload Session Status')}`,
  ),
  stageTokenExactMatch: rule('a session is found by its exact stage token only, whatever its status', PEP694('Publishing Session Token')),

  // ---- File upload sessions ------------------------------------------------------------------
  liveFileUnique: rule(
    "one live file per session+filename: a pending, processing or error file of the name answers 'exists'",
    PEP694('Replacing a Partially or Fully Uploaded File'),
  ),
  completedFileReplaced: rule(
    'a completed file is replaced: the new file is created and the old one canceled in the same step; a canceled file is no obstacle',
    PEP694('Replacing a Partially or Fully Uploaded File'),
  ),
  concurrentFileCreatesOneWinner: rule(
    "N concurrent creates of one filename in one session: exactly one 'created', every other answers 'exists' with the winner",
    PEP694('Replacing a Partially or Fully Uploaded File'),
  ),
  onlyEditableSessionsTakeFiles: rule(
    "only open and error sessions take new files: others answer 'session-state'",
    PEP694('Publishing Session States'),
  ),
  takenFilenameRefused: rule(
    "a filename published, or reserved by a deferred publish, in the project answers 'published'; another project's namespace is separate",
    PEP694('Create a File Upload Session'),
  ),
  maxFilesPerSession: rule(
    "at most maxFiles non-canceled files per session ('too-many-files'); replacing a file at the limit is allowed",
    `index limits; ${PEP694('Create a File Upload Session')}`,
  ),
  maxFileSessions: rule(
    "at most maxFileSessions file upload sessions ever per session, canceled ones included ('too-many-files' with canceledIncluded); absent, no such bound",
    `index limits; ${PEP694('File Upload Session States')}`,
  ),
  filesInCreationOrder: rule(
    'a session lists its files in creation order, canceled ones only when asked',
    PEP694('Publishing Session Status'),
  ),
  listingsWithoutMetadataBytes: rule(
    'listings carry no core metadata bytes: listFiles and listStagedFiles answer each file as getFile does but without coreMetadata, its digest kept',
    `index limits; ${PEP694('Publishing Session Status')}`,
  ),

  // ---- Publication ---------------------------------------------------------------------------
  publishAllOrNothingUnfinished: rule(
    "publish is all files or none: one unfinished file answers 'unfinished' naming every such file, publishes nothing and leaves the session as it was",
    PEP694('Complete a Publishing Session'),
  ),
  publishAllOrNothingConflict: rule(
    "publish is all files or none: one filename published or reserved elsewhere answers 'conflict' naming every such file and publishes nothing",
    PEP694('Atomic Publication and Conflicts'),
  ),
  immediatePublish: rule(
    'an immediate publish publishes every file, registers the project and ends the session, in one step',
    PEP694('Complete a Publishing Session'),
  ),
  deferredPublishReservesFilenames: rule(
    "a deferred publish reserves its filenames: another session's publish of one conflicts, and the files stay invisible until it settles",
    PEP694('Atomic Publication and Conflicts'),
  ),
  settleOkPublishes: rule(
    'settling a deferred publish as successful converts the reservation into publication; only a processing session settles',
    PEP694('Atomic Publication and Conflicts'),
  ),
  settleFailureReleases: rule(
    'settling a deferred publish as failed releases the reservation and moves the session to error with its notices',
    PEP694('Atomic Publication and Conflicts'),
  ),
  directPublishSharesNamespace: rule(
    "publishFile (the legacy upload API) publishes one file into the same namespace: registered and listed at once; a file of its identity published or claimed answers 'conflict', and its identity then conflicts with session publishes and file creation; a live session of the same release is no obstacle",
    PEP694('Atomic Publication and Conflicts'),
  ),
  directPublishNameRules: rule(
    "publishFile of an unpublished name: another creator's live first-release reservation answers 'name-reserved', the creator's own does not; a new name counts against newNames",
    PEP694('Create a Publishing Session'),
  ),
  concurrentDirectAndSessionPublish: rule(
    'N concurrent publishes of one filename, half publishFile and half session publishes: exactly one wins, every other answers conflict',
    PEP694('Atomic Publication and Conflicts'),
  ),
  concurrentPublishesOneWinner: rule(
    "N concurrent publishes of one filename by different sessions: exactly one wins, every other answers 'conflict'",
    PEP694('Atomic Publication and Conflicts'),
  ),

  // ---- Compare-and-set -----------------------------------------------------------------------
  sessionCompareAndSet: rule(
    'updateSession is compare-and-set on the status: a lost race returns undefined and changes nothing; only the given keys change',
    PEP694('Publishing Session States'),
  ),
  fileCompareAndSet: rule(
    'updateFile is compare-and-set on the file status and, when given, its session status: a lost race returns undefined and changes nothing; only the given keys change, null clears',
    PEP694('File Upload Session States'),
  ),
  concurrentCompareAndSetOneWinner: rule(
    'N concurrent compare-and-sets from one status: exactly one applies, every other returns undefined',
    `${PEP694('File Upload Session States')}, ${PEP694('Publishing Session Cancellation')}`,
  ),
  cancelEndsSessionAndFiles: rule(
    'cancelSession is compare-and-set and cancels the session, every file of it and its filename reservations in one step',
    PEP694('Publishing Session Cancellation'),
  ),

  // ---- Housekeeping --------------------------------------------------------------------------
  expiredSessionsListed: rule(
    'listExpiredSessions lists open and error sessions at or past their expiry, never processing or terminal ones',
    PEP694('Publishing Session Cancellation'),
  ),
  expiredFilesListed: rule(
    'listExpiredFiles lists pending files at or past their expiry in open or error sessions only',
    PEP694('Create a File Upload Session'),
  ),
  forgetEndedSessions: rule(
    'forgetEndedSessions forgets terminal sessions that ended strictly before the cutoff, with their files; published files and registrations stay',
    PEP694('Session Status Retention'),
  ),
  processingListed: rule(
    'listProcessing lists the processing sessions and files, the deferred work a crash interrupted',
    PEP694('Publishing Session States'),
  ),
  blobReferences: rule(
    "isBlobReferenced: a held file's blob and a published file's blob are referenced, also after the session is forgotten; a forgotten file's is not",
    PEP694('Publishing Session Cancellation'),
  ),
  workLeasesExclusive: rule(
    'acquireLease (where implemented) is exclusive: one owner holds a key until it releases it or the lease runs out; N concurrent acquires of a free key by different owners give exactly one holder',
    `${PEP694('Publishing Session States')}: deferred work (processing), expiry and sweeps run once across nodes`,
  ),
} as const satisfies Record<string, Rule>;

export const BLOB_STORE_RULES = {
  stagingInvisibleUntilCommit: rule(
    'a staged write is invisible (size, read, list) until commit, then visible whole',
    PEP694('Complete a File Upload Session'),
  ),
  abortLeavesNothing: rule(
    'abort leaves nothing under the key, also after a stream error or a later commit',
    PEP694('Cancellation and Deletion'),
  ),
  commitReplaces: rule(
    'a commit replaces the blob under the key; until then the old one reads as it was',
    PEP694('Replacing a Partially or Fully Uploaded File'),
  ),
  bytesRoundTrip: rule(
    'bytes read back exactly as written, several MiB in many chunks and the empty blob alike',
    PEP694('Complete a File Upload Session'),
  ),
  inclusiveRanges: rule(
    'read ranges are inclusive: first byte, last byte, middle, whole, and an end past the last byte reads to the last byte',
    'RFC 9110 "Range Requests", as the index serves files and validators read archives',
  ),
  sizeOfCommitted: rule(
    'size is the committed byte count, undefined for a missing key; read of a missing key rejects',
    PEP694('Complete a File Upload Session'),
  ),
  moveRenames: rule(
    'move puts the blob under the new key only, replacing one there; moving a missing key rejects',
    PEP694('Complete a File Upload Session'),
  ),
  deleteIdempotent: rule('delete removes the blob; a missing key is not an error', PEP694('Publishing Session Cancellation')),
  listByPrefix: rule(
    'list yields every committed key starting with the prefix (a plain string prefix), and no other',
    PEP694('Publishing Session Cancellation'),
  ),
} as const satisfies Record<string, Rule>;
