"""``python -m vidpop.recipes MODEL --data D --out DIR`` (the torchrun entry point of ``vidpop train --nproc``)."""

from vidpop.recipes.run import main

raise SystemExit(main())
