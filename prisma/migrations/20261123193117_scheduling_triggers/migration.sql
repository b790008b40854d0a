-- CreateEnum
CREATE TYPE "ScheduleUnit" AS ENUM ('MINUTES', 'HOURS', 'DAYS', 'WEEKS', 'MONTHS');

-- CreateEnum
CREATE TYPE "PipelineTrigger" AS ENUM ('ON_DEMAND', 'SCHEDULE', 'SUBSCRIPTION');

-- CreateEnum
CREATE TYPE "ConcurrencyPolicy" AS ENUM ('SKIP', 'QUEUE');

-- CreateEnum
CREATE TYPE "CatchUpPolicy" AS ENUM ('SKIP', 'RUN_ONCE');

-- AlterTable
ALTER TABLE "Pipeline" ADD COLUMN     "allowParallelRuns" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "autoStopAfterFailures" INTEGER NOT NULL DEFAULT 5,
ADD COLUMN     "catchUp" "CatchUpPolicy" NOT NULL DEFAULT 'SKIP',
ADD COLUMN     "concurrencyPolicy" "ConcurrencyPolicy" NOT NULL DEFAULT 'SKIP',
ADD COLUMN     "consecutiveFailures" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "enabled" BOOLEAN NOT NULL DEFAULT true,
ADD COLUMN     "executionTimeoutMs" INTEGER,
ADD COLUMN     "lastRunAt" TIMESTAMP(3),
ADD COLUMN     "nextRunAt" TIMESTAMP(3),
ADD COLUMN     "pushTokenHash" TEXT,
ADD COLUMN     "scheduleCron" TEXT,
ADD COLUMN     "scheduleEvery" INTEGER,
ADD COLUMN     "scheduleTimezone" TEXT NOT NULL DEFAULT 'UTC',
ADD COLUMN     "scheduleUnit" "ScheduleUnit",
ADD COLUMN     "trigger" "PipelineTrigger" NOT NULL DEFAULT 'ON_DEMAND';

-- CreateTable
CREATE TABLE "PushBatch" (
    "sequence" BIGSERIAL NOT NULL,
    "pipelineId" UUID NOT NULL,
    "stream" TEXT NOT NULL,
    "records" JSONB NOT NULL,
    "count" INTEGER NOT NULL,
    "jobId" UUID,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PushBatch_pkey" PRIMARY KEY ("sequence")
);

-- CreateIndex
CREATE INDEX "PushBatch_pipelineId_sequence_idx" ON "PushBatch"("pipelineId", "sequence");

-- AddForeignKey
ALTER TABLE "PushBatch" ADD CONSTRAINT "PushBatch_pipelineId_fkey" FOREIGN KEY ("pipelineId") REFERENCES "Pipeline"("id") ON DELETE CASCADE ON UPDATE CASCADE;

