"""Baseline recommenders for the shared protocol (:mod:`vidpop.training.rec_protocol`).

Single network: ``rec_random``, ``rec_pop``, ``rec_lfm`` (implicit ALS), ``rec_itemknn``, ``rec_fpmc``,
``rec_sasrec`` (modern reference). Cold start (text only): ``rec_mknn``, ``rec_cb``, ``rec_sca``
(plus ``rec_pop``). Each implements only ``fit`` and ``full_sort_scores``; the registry imports the modules.
"""
