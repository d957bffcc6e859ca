-- 0014 webhook messages handled: a message ID whose handler finished is
-- marked, so that Svix's redelivery of it (its answer was lost, say) is
-- acknowledged without processing it again, while a delivery whose
-- handling is still under way elsewhere is refused and retried later.
ALTER TABLE steward_webhook_messages ADD COLUMN handled BOOLEAN NOT NULL DEFAULT false;
