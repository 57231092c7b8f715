/**
 * How many bytes a file read or a staged file write moves per operation, on both sides of an
 * upload: file bodies read by the client halves, staging writes and blob reads of the host.
 *
 * Node's fs streams default to 64 KiB reads and a 16 KiB write buffer, so each 64 KiB chunk costs
 * one round trip through libuv's thread pool (a thread wake-up each way). On our 2-core machines
 * those wake-ups, not the copies, were most of the CPU of an upload: the client half spent about
 * 1.0 s/GB reading a file with 64 KiB reads and 0.7 s/GB with 1 MiB reads, and a staging write
 * buffering up to 1 MiB (flushed with one writev) made 3 to 8 times fewer context switches per MiB
 * than one write per chunk (scripts/bench/exp-ours.mjs, paired runs of 64 MiB uploads). Larger
 * than 1 MiB gained little and costs memory per concurrent upload.
 */
export const FILE_IO_CHUNK = 1024 * 1024;
