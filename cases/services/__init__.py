"""State changes for intake and cases, one module per domain (DESIGN.md):

intake    receive, claim and parse inbound messages; hand-entered complaints
filing    the bulk SQL that turns parsed events into reports on cases
workflow  notes, assignment, status, holds, merges
ladder    the escalation policy: next step, proposals, approvals, actions
notices   the outbox: write, render, claim, send
replies   customers' answers: the signed link and mail threaded onto a case

Every public function that changes state is atomic, takes actor= and writes a CaseEvent.
Services never import tasks: work for the workers is queued after commit through
cases.queue, by task name.
"""
