"""Audience voting's pure core (issue 17): the tally, the fair scheduler, the leak filter.

Nothing here does I/O. The server (a later layer) stores votes, asks `schedule` for the next
battle of a voting session, filters answers with `leaks` before they enter the pool, and at
close runs `tally` once and records its result as one event.
"""
