from svt.cli import main

raise SystemExit(main())
