-- AlterTable
ALTER TABLE "WebhookDelivery" ADD COLUMN     "leaseOwner" TEXT,
ADD COLUMN     "leaseUntil" TIMESTAMP(3);

-- CreateIndex
CREATE INDEX "WebhookDelivery_endpointId_leaseUntil_idx" ON "WebhookDelivery"("endpointId", "leaseUntil");

