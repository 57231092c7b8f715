/** The cluster of docs/scaling.md on one machine: `startCluster` (PostgreSQL, s3rver, N nodes, the proxy) and the proxy itself. */
export { startCluster, REFERENCE_INDEX_MAIN, type Cluster, type ClusterNode, type ClusterOptions } from './cluster.js';
export { RoundRobinProxy, type Backend, type ProxyOptions } from './proxy.js';
