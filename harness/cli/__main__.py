from recsec.harness.cli import main

main()
