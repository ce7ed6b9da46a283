// Stand-in written by avs-pair from the AVS Device SDK's documentation (see tests/sdk-stand-in/README.md).
#ifndef ALEXA_CLIENT_SDK_REGISTRATIONMANAGER_INCLUDE_REGISTRATIONMANAGER_CUSTOMERDATAMANAGER_H_
#define ALEXA_CLIENT_SDK_REGISTRATIONMANAGER_INCLUDE_REGISTRATIONMANAGER_CUSTOMERDATAMANAGER_H_

#include <mutex>
#include <unordered_set>

#include <RegistrationManager/CustomerDataHandler.h>

namespace alexaClientSDK {
namespace registrationManager {

/// Keeps the registered CustomerDataHandlers; clearData() (logout) calls each one's.
class CustomerDataManager {
public:
    virtual ~CustomerDataManager() = default;
    void addDataHandler(CustomerDataHandler* handler);
    void removeDataHandler(CustomerDataHandler* handler);
    void clearData();

private:
    std::mutex m_mutex;
    std::unordered_set<CustomerDataHandler*> m_dataHandlers;
};

}  // namespace registrationManager
}  // namespace alexaClientSDK

#endif
