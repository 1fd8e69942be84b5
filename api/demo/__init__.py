"""``suanli demo``: a realistic market run end to end through the exchange service.

* :mod:`api.demo.scenario`: GPU classes, tiers, seller sites, the cast of traders;
* :mod:`api.demo.agents`: zero-intelligence (ZI-C) traders and market makers;
* :mod:`api.demo.equilibrium`: the competitive equilibrium of a delivery window;
* :mod:`api.demo.simulate`: the run itself, operation by operation through
  :class:`api.service.ExchangeService` on the simulated clock;
* :mod:`api.demo.report`: the numbers (JSON) and the terminal tables (rich);
* :mod:`api.demo.charts`: PNG charts (matplotlib, Agg backend).

See docs/demo.md.
"""
