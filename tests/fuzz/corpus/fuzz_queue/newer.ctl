postie-queue 2
id x
end
