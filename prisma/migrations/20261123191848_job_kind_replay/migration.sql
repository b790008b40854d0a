-- AlterEnum
ALTER TYPE "JobKind" ADD VALUE 'REPLAY';

