"""``dibao demo``: a sample district driven through the system, over RPC like any front.

:mod:`demo.command` is the command; :mod:`demo.entry` the entry part (进口),
:mod:`demo.year` a year in the life (``--months``); :mod:`demo.people` and
:mod:`demo.report` what both share.
"""
