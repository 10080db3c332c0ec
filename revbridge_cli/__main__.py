from revbridge_cli.cli import main

main()
