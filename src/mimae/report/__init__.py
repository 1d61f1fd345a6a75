"""Reports: a run's own page (:mod:`mimae.report.run`) and the comparison of many runs over seeds
(:mod:`mimae.report.comparison`), both written as Markdown and self-contained HTML by :mod:`mimae.report.page`."""
