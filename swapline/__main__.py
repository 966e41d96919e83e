from swapline.cli import main

raise SystemExit(main())
