"""Server-rendered identity pages: login/logout, the account page, the staff admin page."""
