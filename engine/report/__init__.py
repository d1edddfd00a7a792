"""The timeline report: a deal drawn as swimlanes over time, with a replay.

``model`` builds the data (pure), ``html`` renders one self-contained page
and an index, ``png`` a static picture.
"""
