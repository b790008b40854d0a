-- Mapping specs keep their key order (jsonb sorts object keys): `mapping` and `cast` entries
-- apply in the order they were written, and an unchanged spec must not look changed.
-- AlterTable
ALTER TABLE "Mapping" ALTER COLUMN "spec" SET DATA TYPE JSON;

-- AlterTable
ALTER TABLE "MappingVersion" ALTER COLUMN "spec" SET DATA TYPE JSON;
