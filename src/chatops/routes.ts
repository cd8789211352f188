/** The routes of `runbook serve`, also what examples/slack-app-manifest.yaml and examples/alertmanager.yaml point at. */
export const ROUTES = {
  slackCommands: '/slack/commands',
  slackInteractions: '/slack/interactions',
  mattermostCommands: '/mattermost/commands',
  mattermostActions: '/mattermost/actions',
  alertmanager: '/alertmanager',
  metrics: '/metrics',
  healthz: '/healthz',
} as const;
