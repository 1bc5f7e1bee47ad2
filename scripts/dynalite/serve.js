// The strict DynamoDB emulator on loopback: dynalite, in memory, with tables usable
// as soon as they are created. usage: node scripts/dynalite/serve.js PORT
const dynalite = require('dynalite')
const port = Number(process.argv[2])
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
server.listen(port, '127.0.0.1', () => console.log(`dynalite on http://127.0.0.1:${port}`))
