import { z } from 'zod';

/** The `cluster` section of GATEHOUSE_CONFIG (issue 8; see docs/deploy.md). */
export const clusterSchema = z
  .object({
    /**
     * How a node learns of changes made by other nodes on PostgreSQL: `listen` (LISTEN/NOTIFY,
     * ~milliseconds, with a 5 s safety-net poll) or `poll` (every 500 ms only; for poolers
     * that cannot LISTEN and no `listenUrl`). SQLite always polls.
     */
    changeFeed: z.enum(['listen', 'poll']).default('listen'),
    /** Direct PostgreSQL URL for the LISTEN connection when DATABASE_URL goes through a transaction-mode pooler (PgBouncer). */
    listenUrl: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL').optional(),
  })
  .strict()
  .default({});

export type ClusterConfig = z.infer<typeof clusterSchema>;
