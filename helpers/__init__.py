"""forgery-workbook support package."""
