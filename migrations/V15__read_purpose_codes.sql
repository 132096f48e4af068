-- Why a record is read is a code from a fixed list (app::records::ReadPurpose), never free text:
-- the read audit is append-only and not encrypted, so words typed there (a name, a diagnosis)
-- would be kept in every copy of the database for ever, out of reach of erasure.
-- Reads recorded before keep the words they were recorded with in `purpose` (the table is never
-- rewritten); no read recorded from now on may write any there (NOT VALID: the constraint holds
-- for every new row and leaves the old ones as they are).
ALTER TABLE record_reads
    ADD COLUMN purpose_code text CHECK (purpose_code IN (
        'direct_care', 'supervision', 'audit', 'safeguarding', 'subject_access_request',
        'complaint', 'data_quality', 'other'
    ));
ALTER TABLE record_reads
    ADD CONSTRAINT record_reads_no_free_text_purpose CHECK (purpose IS NULL) NOT VALID;
COMMENT ON COLUMN record_reads.purpose IS
    'Free text stated as the purpose of reads recorded before V15; never written since.';
COMMENT ON COLUMN record_reads.purpose_code IS
    'Why the record was read: a code of app::records::ReadPurpose.';
