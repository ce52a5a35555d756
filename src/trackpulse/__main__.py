from trackpulse.cli import main

main()
