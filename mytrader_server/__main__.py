from mytrader_server.cli import main

main()
