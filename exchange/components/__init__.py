"""The components of the exchange core, each owning its state, its operations and its part
of the state hash (:mod:`exchange.core` composes them behind one dispatch table):

* :mod:`.accounts`: accounts, API keys and the ledger (deposits, withdrawals);
* :mod:`.catalog`: the hardware catalog and the GPU classes over it;
* :mod:`.sites`: sellers' sites and pools, and the capacity book over them;
* :mod:`.listing`: tiers, the listing of their windows as instruments, halts;
* :mod:`.trading`: orders with their pre-trade holds, client order ids and open counts,
  and the matching engine;
* :mod:`.clearing`: contracts out of trades, delivery reports, final settlement;
* :mod:`.clock`: the clock, the id counters and the schedule of lifecycle actions;
* :mod:`.context`: what every component shares: the shell's settings and the record of
  what the last operations changed, with the table that routes engine events.

A component gets what it needs of another through the references it is built with and
their methods, never through another component's dicts.
"""
