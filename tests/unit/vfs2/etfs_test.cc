// etfs tests: below
