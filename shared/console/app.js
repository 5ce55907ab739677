// console app
