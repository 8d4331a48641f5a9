-- Working-day deadlines that are provisional (registry/domain/working_days.py): they
-- reach into a year whose State Council holiday notice the registry does not know yet,
-- so that year's days were counted Monday to Friday. The deadline itself stays a column
-- of its audited row (objections.decide_due, objections.answer_due); a row here says
-- that it is provisional and how to count it again: `working_days` working days after
-- `counted_from` (the policy of the filing day, not of the recount). Start-up and every
-- expiry pass count each one again with the calendar they have
-- (registry/credit/objections.py recount_provisional_deadlines): a date that moves is an
-- audited change of its row by `system:calendar`, and the row here is deleted once the
-- count guesses no year.
-- Not audited itself, like the other bookkeeping tables: the audited dates are the
-- record; this table only says which of them may still move.
CREATE TABLE provisional_deadlines (
    object_type  text NOT NULL CHECK (object_type IN ('objection')),
    object_id    uuid NOT NULL,
    deadline     text NOT NULL CHECK (deadline IN ('decide_due', 'answer_due')),
    counted_from date NOT NULL,
    working_days integer NOT NULL CHECK (working_days >= 0),
    PRIMARY KEY (object_type, object_id, deadline)
);

-- Every deadline stored before this migration was counted Monday to Friday, with no
-- holiday calendar at all. Each is counted again once, at the first start, from its
-- filing day and the number of Monday-to-Friday days it spans (exactly the count it was
-- made with; a deadline of 0 days spans none).
INSERT INTO provisional_deadlines (object_type, object_id, deadline, counted_from, working_days)
SELECT 'objection', o.id, d.deadline, o.filed_on,
       (SELECT count(*)
          FROM generate_series(o.filed_on + 1, d.due, interval '1 day') AS g (day)
         WHERE extract(isodow FROM g.day) < 6)
  FROM objections o
 CROSS JOIN LATERAL (VALUES ('decide_due', o.decide_due), ('answer_due', o.answer_due))
       AS d (deadline, due);
