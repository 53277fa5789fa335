"""What people use: the command line (:mod:`.cli`), the HTTP server and web page (:mod:`.server`), the demo,
exports and progress bars. Everything here calls the same library functions; nothing below imports from here."""
