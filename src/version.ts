/** This build's version: `runbook --version`, and `runbook_build_info` on a server's /metrics. */
export const VERSION = '0.1.0';
