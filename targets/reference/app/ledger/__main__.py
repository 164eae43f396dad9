from .web import main

main()
