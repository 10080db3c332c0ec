from revbridge_cli.cli.app import main

main()
