/** Module (application) names, as in CONTRACT.md. A user's or token's API rights are a subset. */
export const MODULES = [
  'VM', 'PC', 'WAS', 'ETM', 'CSAM', 'TOTALCLOUD', 'PM', 'CA', 'CS', 'CERTVIEW', 'OT', 'EDR', 'AM',
] as const;
export type ModuleName = (typeof MODULES)[number];

export function isModuleName(v: unknown): v is ModuleName {
  return typeof v === 'string' && (MODULES as readonly string[]).includes(v);
}

/** Canonical order, no duplicates. */
export function normalizeModules(mods: readonly ModuleName[]): ModuleName[] {
  const set = new Set(mods);
  return MODULES.filter((m) => set.has(m));
}

export function intersectModules(a: readonly ModuleName[], b: readonly ModuleName[]): ModuleName[] {
  const set = new Set(b);
  return normalizeModules(a.filter((m) => set.has(m)));
}
