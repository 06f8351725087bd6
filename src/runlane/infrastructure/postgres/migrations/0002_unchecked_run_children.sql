-- Events and outbox rows lose their foreign key to runs (see schema.py, the note above _run_fk):
-- every write of them runs in the transaction that writes their run row, and pruning deletes them.
ALTER TABLE "__RUNLANE_SCHEMA__".run_events DROP CONSTRAINT IF EXISTS fk_run_events_environment_run_id_runs;
ALTER TABLE "__RUNLANE_SCHEMA__".outbox_messages DROP CONSTRAINT IF EXISTS fk_outbox_messages_environment_run_id_runs;
