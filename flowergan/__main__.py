from flowergan.cli.main import main

main()
