// Test runs keep the kernel log quiet unless DMALAB_LOG asks otherwise.
process.env['DMALAB_LOG'] ??= 'silent'
