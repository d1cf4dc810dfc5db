"""The report of one benchmark run folder (``mnist-bench report``): ``run_page.py`` (build and write the
page), ``timing_sections.py`` (machine, models, training, rounds, inference, memory, roofline),
``other_sections.py`` (prediction quality, data-parallel scaling, time to accuracy, cuts, skips, comparison,
profile) and ``digit_figures.py`` (confusion matrices and digit grids).
"""
