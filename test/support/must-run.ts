/**
 * A test that needs something only some machines give (root to mount a tmpfs, chattr +i on the state dir's
 * filesystem): on a developer's machine without it, it skips and says why; in CI (CI=true) it fails, so a CI box
 * that lost the privilege or the tool cannot turn the test into a silent pass (the same rule as sshd's: the helper
 * that starts it throws rather than skips).
 */
export function skipUnlessCI(ctx: { skip: (note?: string) => never }, why: string): never {
  if (process.env.CI === 'true') {
    throw new Error(`${why}. CI (CI=true) must run this test: give the CI machine what it needs (it runs as root on ext4 here) rather than skipping it`);
  }
  return ctx.skip(why);
}
