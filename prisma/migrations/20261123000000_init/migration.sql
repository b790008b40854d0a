-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "ConnectorRole" AS ENUM ('SOURCE', 'DESTINATION');

-- CreateEnum
CREATE TYPE "PipelineState" AS ENUM ('STOP', 'INIT', 'READY', 'PAUSE');

-- CreateEnum
CREATE TYPE "WriteMode" AS ENUM ('APPEND', 'OVERWRITE', 'UPSERT', 'MERGE');

-- CreateEnum
CREATE TYPE "JobKind" AS ENUM ('SYNC', 'RESET', 'CHECK', 'DISCOVER');

-- CreateEnum
CREATE TYPE "JobStatus" AS ENUM ('QUEUED', 'RUNNING', 'PAUSED', 'SUCCEEDED', 'FAILED', 'CANCELLED');

-- CreateTable
CREATE TABLE "Connector" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "role" "ConnectorRole" NOT NULL,
    "driver" TEXT NOT NULL,
    "config" JSONB NOT NULL,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "lastCheckOk" BOOLEAN,
    "lastCheckAt" TIMESTAMP(3),
    "lastCheckMessage" TEXT,
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Connector_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Mapping" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "version" INTEGER NOT NULL DEFAULT 1,
    "spec" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Mapping_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "MappingVersion" (
    "id" UUID NOT NULL,
    "mappingId" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "spec" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "MappingVersion_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Pipeline" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "sourceId" UUID NOT NULL,
    "destinationId" UUID NOT NULL,
    "mappingId" UUID,
    "streams" JSONB NOT NULL,
    "writeMode" "WriteMode" NOT NULL DEFAULT 'APPEND',
    "batchSize" INTEGER NOT NULL DEFAULT 5000,
    "failureThreshold" DOUBLE PRECISION NOT NULL DEFAULT 5,
    "state" "PipelineState" NOT NULL DEFAULT 'STOP',
    "previousState" "PipelineState",
    "stateReason" TEXT,
    "cursor" JSONB,
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Pipeline_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Job" (
    "id" UUID NOT NULL,
    "kind" "JobKind" NOT NULL,
    "status" "JobStatus" NOT NULL DEFAULT 'QUEUED',
    "pipelineId" UUID,
    "connectorId" UUID,
    "trigger" TEXT NOT NULL DEFAULT 'MANUAL',
    "mappingId" UUID,
    "mappingVersion" INTEGER,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "recordsRead" BIGINT NOT NULL DEFAULT 0,
    "recordsWritten" BIGINT NOT NULL DEFAULT 0,
    "recordsFailed" BIGINT NOT NULL DEFAULT 0,
    "bytesRead" BIGINT NOT NULL DEFAULT 0,
    "bytesWritten" BIGINT NOT NULL DEFAULT 0,
    "cursorStart" JSONB,
    "cursorEnd" JSONB,
    "error" TEXT,
    "result" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Job_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "JobAttempt" (
    "id" UUID NOT NULL,
    "jobId" UUID NOT NULL,
    "number" INTEGER NOT NULL,
    "status" "JobStatus" NOT NULL,
    "recordsRead" BIGINT NOT NULL DEFAULT 0,
    "recordsWritten" BIGINT NOT NULL DEFAULT 0,
    "recordsFailed" BIGINT NOT NULL DEFAULT 0,
    "error" TEXT,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "JobAttempt_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "DeadLetter" (
    "id" UUID NOT NULL,
    "jobId" UUID NOT NULL,
    "pipelineId" UUID NOT NULL,
    "stream" TEXT NOT NULL,
    "stage" TEXT NOT NULL,
    "error" TEXT NOT NULL,
    "record" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "DeadLetter_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Event" (
    "sequence" BIGSERIAL NOT NULL,
    "id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "pipelineId" UUID,
    "jobId" UUID,
    "connectorId" UUID,
    "message" TEXT NOT NULL,
    "data" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Event_pkey" PRIMARY KEY ("sequence")
);

-- CreateIndex
CREATE INDEX "Connector_role_driver_idx" ON "Connector"("role", "driver");

-- CreateIndex
CREATE UNIQUE INDEX "MappingVersion_mappingId_version_key" ON "MappingVersion"("mappingId", "version");

-- CreateIndex
CREATE INDEX "Pipeline_state_idx" ON "Pipeline"("state");

-- CreateIndex
CREATE INDEX "Pipeline_sourceId_idx" ON "Pipeline"("sourceId");

-- CreateIndex
CREATE INDEX "Pipeline_destinationId_idx" ON "Pipeline"("destinationId");

-- CreateIndex
CREATE INDEX "Pipeline_mappingId_idx" ON "Pipeline"("mappingId");

-- CreateIndex
CREATE INDEX "Job_pipelineId_createdAt_idx" ON "Job"("pipelineId", "createdAt");

-- CreateIndex
CREATE INDEX "Job_status_idx" ON "Job"("status");

-- CreateIndex
CREATE INDEX "Job_connectorId_idx" ON "Job"("connectorId");

-- CreateIndex
CREATE UNIQUE INDEX "JobAttempt_jobId_number_key" ON "JobAttempt"("jobId", "number");

-- CreateIndex
CREATE INDEX "DeadLetter_pipelineId_createdAt_idx" ON "DeadLetter"("pipelineId", "createdAt");

-- CreateIndex
CREATE INDEX "DeadLetter_jobId_idx" ON "DeadLetter"("jobId");

-- CreateIndex
CREATE UNIQUE INDEX "Event_id_key" ON "Event"("id");

-- CreateIndex
CREATE INDEX "Event_pipelineId_sequence_idx" ON "Event"("pipelineId", "sequence");

-- CreateIndex
CREATE INDEX "Event_jobId_sequence_idx" ON "Event"("jobId", "sequence");

-- CreateIndex
CREATE INDEX "Event_connectorId_sequence_idx" ON "Event"("connectorId", "sequence");

-- CreateIndex
CREATE INDEX "Event_type_sequence_idx" ON "Event"("type", "sequence");

-- CreateIndex
CREATE INDEX "Event_createdAt_idx" ON "Event"("createdAt");

-- AddForeignKey
ALTER TABLE "MappingVersion" ADD CONSTRAINT "MappingVersion_mappingId_fkey" FOREIGN KEY ("mappingId") REFERENCES "Mapping"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Pipeline" ADD CONSTRAINT "Pipeline_sourceId_fkey" FOREIGN KEY ("sourceId") REFERENCES "Connector"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Pipeline" ADD CONSTRAINT "Pipeline_destinationId_fkey" FOREIGN KEY ("destinationId") REFERENCES "Connector"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Pipeline" ADD CONSTRAINT "Pipeline_mappingId_fkey" FOREIGN KEY ("mappingId") REFERENCES "Mapping"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Job" ADD CONSTRAINT "Job_pipelineId_fkey" FOREIGN KEY ("pipelineId") REFERENCES "Pipeline"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Job" ADD CONSTRAINT "Job_connectorId_fkey" FOREIGN KEY ("connectorId") REFERENCES "Connector"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "JobAttempt" ADD CONSTRAINT "JobAttempt_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "DeadLetter" ADD CONSTRAINT "DeadLetter_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "DeadLetter" ADD CONSTRAINT "DeadLetter_pipelineId_fkey" FOREIGN KEY ("pipelineId") REFERENCES "Pipeline"("id") ON DELETE CASCADE ON UPDATE CASCADE;

