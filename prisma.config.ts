/**
 * Prisma CLI configuration. The CLI runs on the JavaScript schema engine with a driver
 * adapter (no native engines can be downloaded on our machines): PostgreSQL when
 * DATABASE_URL is a postgres URL, otherwise a throw-away in-memory PGlite (enough for
 * `prisma migrate diff` and `generate`). Sluice itself applies migrations at start.
 */
import { defineConfig } from 'prisma/config';

const url = process.env.DATABASE_URL ?? '';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  experimental: { adapter: true },
  engine: 'js',
  adapter: async () => {
    if (/^postgres(ql)?:\/\//.test(url)) {
      const { PrismaPg } = await import('@prisma/adapter-pg');
      return new PrismaPg({ connectionString: url });
    }
    const { PGlite } = await import('@electric-sql/pglite');
    const { PrismaPGlite } = await import('pglite-prisma-adapter');
    // pglite-prisma-adapter bundles its own (older) adapter-utils types; the runtime protocol matches.
    return new PrismaPGlite(new PGlite()) as never;
  },
});
