/** runbook's version, as `runbook --version`, `serve` and the chat-ops hygiene report say it. */
export const VERSION = '0.1.0';
