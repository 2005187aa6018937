"""TEST-ONLY extension for the Eclipse DSP TCK (Technology Compatibility Kit). Off unless `--tck` is set.

The TCK drives a connector as a black box: it cannot tell the connector "send an offer now", so the connector must
read the next move of each scenario from the dataset id (negotiations) or the agreement id (transfers) that the
TCK's configuration names. This package holds that script (`scenarios`), the fixed seed the ids refer to (`seed`),
and the two hooks the TCK calls to make us start a negotiation or a transfer as consumer (`hooks`).

Never enable it in a dataspace: it seeds data, plays scripted moves, and requires the static identity mode.
"""
