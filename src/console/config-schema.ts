import { z } from 'zod';

/** YAML `console:` — the web console's sessions (see docs/console.md). */
export const consoleSchema = z
  .object({
    /** Serve the SPA at /console (the session API under /api/v1/session is always there). */
    enabled: z.boolean().default(true),
    /** A session unused this long ends (default 30 minutes). */
    idleTimeoutSeconds: z.number().int().min(1).max(7 * 24 * 3600).default(30 * 60),
    /** A session ends this long after sign-in, however active (default 12 hours). */
    absoluteTimeoutSeconds: z.number().int().min(60).max(30 * 24 * 3600).default(12 * 3600),
    /** Where the built SPA is; default: web/dist of this package. */
    distDir: z.string().min(1).optional(),
  })
  .strict()
  .default({});

export type ConsoleSettings = z.infer<typeof consoleSchema>;
