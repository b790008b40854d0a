-- AlterTable
ALTER TABLE "Pipeline" ADD COLUMN     "maxAttempts" INTEGER NOT NULL DEFAULT 3,
ADD COLUMN     "retryBackoffMs" INTEGER NOT NULL DEFAULT 10000;

-- AlterTable
ALTER TABLE "Job" ADD COLUMN     "nextAttemptAt" TIMESTAMP(3),
ADD COLUMN     "streamStats" JSONB;

