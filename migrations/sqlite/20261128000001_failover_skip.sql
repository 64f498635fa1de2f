-- Why a request that needed Bedrock could not be sent there (unmapped_model, untranslatable,
-- bad_body): the admin API lists unmapped models from it.
ALTER TABLE request_logs ADD COLUMN failover_skip TEXT;
