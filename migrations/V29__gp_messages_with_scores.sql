-- Messages back to the GP at the end of an episode, with its wellbeing scores (issue #20 part 2,
-- GP message rules v2).
--
-- `code_system`: the message's code's system when it is not SNOMED CT (the end of an episode
-- has no national code; NULL is SNOMED CT, as every message before). `observations`: the
-- assessments (their ids) whose scores go with the message. Scores are not kept here:
-- the dispatcher reads and scores those events from the log as it sends, corrections applied,
-- as it reads the NHS number, so the outbox holds no health data of its own.
ALTER TABLE gp_outbox
    ADD COLUMN code_system text,
    ADD COLUMN observations uuid[] NOT NULL DEFAULT '{}';
