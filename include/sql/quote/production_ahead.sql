-- Schema changes production runs and the baseline does not have yet.
CREATE INDEX quotes_created_at_idx ON quotes (created_at);
-- Destructive: production dropped the column; the baseline still has it, with data in it.
ALTER TABLE quotes DROP COLUMN legacy_promo_code;
