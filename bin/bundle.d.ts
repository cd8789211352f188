/** Types of bin/bundle.js (plain JS: it runs before anything is compiled). */
export function freshBundle(root: string): string | undefined;
export function buildBundle(root: string, why?: (reason: string) => void): Promise<string | undefined>;
