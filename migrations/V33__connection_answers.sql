-- What a service said of each onward connection made to it (issue #21 part 4): its answer
-- (`accepted` or `declined`, by the provider's staff) and whether the person started. The gap
-- report counts them per service beside what the link worker recorded. Filled by the outcome
-- figures' projector as it folds; connections answered before this migration read as unanswered
-- until `casebook rebuild outcomes --restart` (or `rebuild all`).
ALTER TABLE report_connections
    ADD COLUMN service_answer text CHECK (service_answer IN ('accepted', 'declined')),
    ADD COLUMN started boolean;
