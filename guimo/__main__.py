from guimo.cli import main

raise SystemExit(main())
